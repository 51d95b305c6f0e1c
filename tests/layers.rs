//! Composing: two `LogLayer`s in one registry (JSON to a file and pretty
//! lines on the console is the usual pair) over a real server. Each gets
//! every line with the request id and the span fields, each under its own
//! redaction policy, and the requests are served.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::routing::get;
use axum::Router;
use common::{client_runtime, parse_lines};
use corrlog::fmt::Redaction;
use corrlog::output::Capture;
use corrlog::testing::runtime_with;
use corrlog::{LogLayer, RequestLayer};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

async fn handler() -> &'static str {
    async {
        tracing::info!(target: "orders", "in handler");
    }
    .instrument(tracing::info_span!("work", tenant = "acme", step = 1))
    .await;
    "ok"
}

#[test]
fn two_log_layers_share_a_registry() {
    let json = Capture::new();
    let pretty = Capture::new();
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(LogLayer::json(json.clone()))
            .with(
                LogLayer::pretty(pretty.clone(), false)
                    .redaction(Redaction::default().mask_fields_containing(["tenant"])),
            ),
    );
    let rt = runtime_with(dispatch, 2);
    let addr = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/", get(handler))
            .layer(RequestLayer::new());
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    });

    let client = client_runtime();
    for i in 0..20 {
        let id = format!("two-layers-{i}");
        let response = client.block_on(async {
            reqwest::Client::new()
                .get(format!("http://{addr}/"))
                .header("x-request-id", &id)
                .send()
                .await
                .unwrap()
        });
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-request-id"], id.as_str());
    }
    rt.shutdown_timeout(std::time::Duration::from_secs(5));

    let lines = parse_lines(&json.bytes());
    let handler_lines: Vec<_> = lines.iter().filter(|l| l["logger"] == "orders").collect();
    assert_eq!(handler_lines.len(), 20);
    for line in &handler_lines {
        assert!(line["request_id"]
            .as_str()
            .unwrap()
            .starts_with("two-layers-"));
        assert_eq!(line["tenant"], "acme", "{line}");
        assert_eq!(line["step"], 1);
    }
    // Twenty access lines too.
    assert_eq!(
        lines
            .iter()
            .filter(|l| l["logger"] == "corrlog::access")
            .count(),
        20
    );

    let pretty = pretty.lines();
    let handler_lines: Vec<_> = pretty.iter().filter(|l| l.contains("in handler")).collect();
    assert_eq!(handler_lines.len(), 20);
    for line in handler_lines {
        assert!(line.contains("request_id=two-layers-"), "{line}");
        assert!(line.contains("tenant=\"[REDACTED]\""), "{line}");
        assert!(!line.contains("acme"), "{line}");
    }
}
