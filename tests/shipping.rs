//! The facts each recipe in docs/shipping.md relies on, checked against
//! real lines written through the builder; and the field names the recipes
//! use are the ones corrlog writes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use corrlog::context::TraceContext;
use corrlog::fmt::Service;
use corrlog::http::X_REQUEST_ID;
use corrlog::output::Destination;
use corrlog::testing::TestLogs;
use corrlog::{Format, RequestContext, RequestId};
use serde_json::{Map, Value};

const RECIPES: &str = include_str!("../docs/shipping.md");

/// Lines written through the builder's JSON set-up: one in a traced
/// request, one outside, and one with oversized values.
fn lines() -> (Vec<String>, Vec<Map<String, Value>>) {
    let capture = TestLogs::new();
    let (subscriber, logging) = corrlog::builder()
        .format(Format::Json)
        .service(
            Service::new("orders")
                .version("1.4.2")
                .environment("production"),
        )
        .output(Destination::Writer(Box::new(capture.clone())))
        .use_env(false)
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        let ctx = RequestContext::with_trace(
            RequestId::new("550e8400-e29b-41d4-a716-446655440000").unwrap(),
            Some(TraceContext::new_root()),
            X_REQUEST_ID,
        );
        ctx.run(|| tracing::info!(target: "orders", order_id = "42", "loading order"));
        tracing::warn!(target: "orders", note = "two\nlines", "outside");
        let big = "x".repeat(100 * 1024);
        tracing::error!(target: "orders", detail = big.as_str(), "{big}");
    });
    logging.shutdown(Duration::from_secs(5));
    let text = String::from_utf8(capture.bytes()).unwrap();
    assert!(text.ends_with('\n'));
    let raw: Vec<String> = text.lines().map(str::to_owned).collect();
    let parsed = raw
        .iter()
        .map(|l| match serde_json::from_str(l).unwrap() {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        })
        .collect();
    (raw, parsed)
}

/// The fenced block of `lang` in the section titled `heading`.
fn block(heading: &str, lang: &str) -> &'static str {
    let section = RECIPES
        .split("\n## ")
        .find(|s| s.starts_with(heading))
        .unwrap_or_else(|| panic!("no section {heading}"));
    let start = section.find(&format!("```{lang}\n")).unwrap() + lang.len() + 4;
    let len = section[start..].find("```").unwrap();
    &section[start..start + len]
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`: the Go layout, `%Y-%m-%dT%H:%M:%S.%LZ`
/// and RFC 3339 alike.
fn is_millis_utc(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
        && time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok()
}

#[test]
fn the_collector_recipe_finds_every_field_it_names() {
    let (_, lines) = lines();
    let request = &lines[0];
    let yaml = block("OpenTelemetry Collector", "yaml");
    // Every `attributes.x` and `attributes["x"]` the recipe reads.
    let mut named = Vec::new();
    for part in yaml.split("attributes").skip(1) {
        let name = if let Some(rest) = part.strip_prefix("[\"") {
            &rest[..rest.find('"').unwrap()]
        } else if let Some(rest) = part.strip_prefix('.') {
            rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .next()
                .unwrap()
        } else {
            continue;
        };
        named.push(name);
    }
    assert!(named.len() >= 10, "{named:?}");
    for name in &named {
        assert!(request.contains_key(*name), "{name} not on {request:?}");
    }
    assert!(yaml.contains("layout: \"2006-01-02T15:04:05.000Z07:00\""));
    for line in &lines {
        assert!(is_millis_utc(line["timestamp"].as_str().unwrap()));
        let level = line["level"].as_str().unwrap();
        assert!(["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&level));
        // The trace fields come together or not at all.
        let traced = ["trace_id", "span_id", "trace_flags"].map(|k| line.contains_key(k));
        assert!(traced == [true; 3] || traced == [false; 3], "{line:?}");
    }
    assert!(is_hex(request["trace_id"].as_str().unwrap(), 32));
    assert!(is_hex(request["span_id"].as_str().unwrap(), 16));
    assert!(is_hex(request["trace_flags"].as_str().unwrap(), 2));
    assert!(!lines[1].contains_key("trace_id"));
}

#[test]
fn the_vector_recipe_reads_whole_lines_and_dotted_keys() {
    let (raw, lines) = lines();
    let toml = block("Vector", "toml");
    assert!(toml.contains(".service = del(.\"service.name\")"));
    assert!(toml.contains("labels.level = \"{{ level }}\""));
    // One object a line: a value's newline is escaped, never raw.
    assert_eq!(raw.len(), 3);
    assert_eq!(lines[1]["note"], "two\nlines");
    for line in &lines {
        assert_eq!(line["service.name"], "orders");
        assert!(line.contains_key("level"));
        let ts = line["timestamp"].as_str().unwrap();
        assert!(
            time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).is_ok()
        );
    }
}

#[test]
fn the_fluent_bit_recipe_sees_capped_values() {
    let (raw, lines) = lines();
    let ini = block("Fluent Bit", "ini");
    assert!(ini.contains("Buffer_Max_Size   1M"));
    assert!(ini.contains("Skip_Long_Lines   On"));
    assert!(ini.contains("Time_Format %Y-%m-%dT%H:%M:%S.%LZ"));
    let cap = corrlog::fmt::DEFAULT_MAX_VALUE_BYTES;
    assert_eq!(cap, 16 * 1024, "the recipe says 16 KiB");
    let big = &lines[2];
    for key in ["message", "detail"] {
        let value = big[key].as_str().unwrap();
        assert!(value.len() <= cap + 64, "{key}: {} bytes", value.len());
        assert!(value.ends_with("[truncated, 102400 bytes in all]"), "{key}");
    }
    // Two 100 KiB values make a line of about two caps, far under 1M,
    // though over the default 32 KiB buffer.
    assert!(raw[2].len() > 32 * 1024 && raw[2].len() < 2 * cap + 1024);
}

#[test]
fn the_loki_recipe_filters_on_fields_never_labels() {
    let (_, lines) = lines();
    let section = RECIPES
        .split("\n## ")
        .find(|s| s.starts_with("Loki"))
        .unwrap();
    assert!(section.contains("| json | request_id=\""));
    assert!(section.contains("| json | trace_id=\""));
    // No recipe makes an id a label.
    for id in ["request_id", "trace_id", "span_id"] {
        assert!(!RECIPES.contains(&format!("labels.{id}")), "{id}");
        assert!(!RECIPES.contains(&format!("{{{id}=")), "{id}");
    }
    for key in ["request_id", "trace_id", "span_id"] {
        assert!(lines[0][key].is_string(), "{key} is a top-level string");
    }
}
