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
use corrlog::testing::runtime_with;
use corrlog::testing::TestLogs;
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
    let json = TestLogs::new();
    let pretty = TestLogs::new();
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(LogLayer::new(json.clone()))
            .with(
                LogLayer::new(pretty.clone())
                    .format(corrlog::Format::Pretty)
                    .redaction(Redaction::default().mask_names_containing(["tenant"])),
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

/// Two line layers with different policies: each masks the access line's
/// query *and* its headers by its own policy, and an enclosing span's
/// `headers` field never gives the access line a second `headers` key.
#[test]
fn each_layer_masks_the_access_line_by_its_own_policy() {
    let json = TestLogs::new();
    let pretty = TestLogs::new();
    let strict = Redaction::default()
        .mask_query_params(["page"])
        .mask_headers([axum::http::header::ACCEPT]);
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(LogLayer::new(json.clone()))
            .with(
                LogLayer::new(pretty.clone())
                    .format(corrlog::Format::Pretty)
                    .redaction(strict),
            ),
    );
    let rt = runtime_with(dispatch, 2);
    let addr = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let access = corrlog::http::AccessLog::default()
            .include_query(true)
            .log_headers([
                axum::http::header::ACCEPT,
                axum::http::header::AUTHORIZATION,
            ]);
        let app = Router::new()
            .route("/", get(|| async { "ok" }))
            .layer(RequestLayer::new().access_log(access))
            .layer(
                tower_http::trace::TraceLayer::new_for_http().make_span_with(
                    |_: &axum::http::Request<_>| {
                        tracing::info_span!("outer", headers = "from-a-span")
                    },
                ),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    });
    client_runtime().block_on(async {
        reqwest::Client::new()
            .get(format!("http://{addr}/?page=2&token=t0p"))
            .header("accept", "text/plain")
            .header("authorization", "Bearer s3cr3t")
            .header("x-request-id", "policy-1")
            .send()
            .await
            .unwrap();
    });
    rt.shutdown_timeout(std::time::Duration::from_secs(5));

    let raw = String::from_utf8(json.bytes()).unwrap();
    let access = raw
        .lines()
        .find(|l| l.contains("\"request finished\""))
        .unwrap();
    assert_eq!(access.matches("\"headers\":").count(), 1, "{access}");
    let line: serde_json::Value = serde_json::from_str(access).unwrap();
    assert_eq!(line["path"], "/?page=2&token=[REDACTED]");
    assert_eq!(
        line["headers"],
        "accept: text/plain, authorization: [REDACTED]"
    );

    let console = pretty.lines();
    let access = console
        .iter()
        .find(|l| l.contains("request finished"))
        .unwrap();
    assert_eq!(access.matches(" headers=").count(), 1, "{access}");
    assert!(
        access.contains(r#"path="/?page=[REDACTED]&token=[REDACTED]""#),
        "{access}"
    );
    assert!(
        access.contains(r#"headers="accept: [REDACTED], authorization: [REDACTED]""#),
        "{access}"
    );
    for line in raw.lines().chain(console.iter().map(String::as_str)) {
        assert!(!line.contains("s3cr3t") && !line.contains("t0p"), "{line}");
    }
}
