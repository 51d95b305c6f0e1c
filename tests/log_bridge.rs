//! Records from crates that use the `log` crate carry the request id too,
//! with their own target as the logger name.
#![cfg(feature = "log")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use corrlog::testing::TestLogs;
use corrlog::{RequestContext, RequestId};
use serde_json::Value;

#[test]
fn log_records_carry_the_request_id() {
    tracing_log::LogTracer::init().unwrap();
    let logs = TestLogs::new();
    logs.scope(|| {
        RequestContext::new(RequestId::new("log-bridge-1").unwrap()).run(|| {
            corrlog::bind("tenant", "acme");
            log::info!(target: "legacy_db", "query took {} ms", 12);
        });
        log::warn!(target: "legacy_db", "outside any request");
    });
    let lines: Vec<Value> = logs
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["message"], "query took 12 ms");
    assert_eq!(lines[0]["logger"], "legacy_db");
    assert_eq!(lines[0]["request_id"], "log-bridge-1");
    assert_eq!(lines[0]["tenant"], "acme");
    assert!(
        lines[0].get("log.target").is_none(),
        "bridge metadata is not repeated"
    );
    assert_eq!(lines[1]["level"], "WARN");
    assert!(lines[1].get("request_id").is_none());
}
