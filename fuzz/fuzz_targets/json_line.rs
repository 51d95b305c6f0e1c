//! The JSON encoder: whatever the message, field values and bound fields,
//! each event is one line that parses as a JSON object and round-trips
//! (up to the value size cap).
#![no_main]

use corrlog::output::Capture;
use corrlog::{LogLayer, RequestContext, RequestId};
use libfuzzer_sys::fuzz_target;
use tracing_subscriber::layer::SubscriberExt;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (a, b) = text.split_at(text.char_indices().nth(text.chars().count() / 2).map_or(0, |(i, _)| i));
    let capture = Capture::new();
    let subscriber = tracing_subscriber::registry().with(LogLayer::new(capture.clone()));
    tracing::subscriber::with_default(subscriber, || {
        let ctx = RequestContext::new(RequestId::generate());
        ctx.bind(a.to_owned(), b);
        ctx.run(|| tracing::info!(field = a, other = ?b, "{}", text));
    });
    let lines = capture.lines();
    assert_eq!(lines.len(), 1);
    let value: serde_json::Value = serde_json::from_str(&lines[0]).expect("valid JSON");
    let map = value.as_object().expect("an object");
    if text.len() <= corrlog::fmt::DEFAULT_MAX_VALUE_BYTES {
        assert_eq!(map["message"], *text);
    }
});
